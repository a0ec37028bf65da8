//! The one definition of every measurement: MTTD, MTTR, time to steady state, false
//! positives, probe loss, overhead, and their aggregates. The simulator, the live lab and
//! the twin all feed these functions the same records, so a number means the same thing
//! wherever it was measured.
//!
//! Definitions, per injected fault:
//! - `t_inject`: when the fault took effect.
//! - `t_detect`: for a node fault, the first time any other node declares a target
//!   suspected or down (or sees it restart); for a link fault, the first time an endpoint
//!   of an affected link suspects or drops the peer across it, or moves a route off it.
//! - `t_reroute`: a probed pair is *disrupted* if its first probe sent at or after
//!   `t_inject` fails while a ground-truth path exists; it *recovers* with the first later
//!   probe that succeeds. `t_reroute` is the send time of the last recovering probe.
//!   Faults that disrupt no pair have no MTTR (there was nothing to repair).
//! - `t_steady`: the earliest `T >= t_inject` from which the steady-state hypothesis holds
//!   over the window `[T, T + window)`.
//! - MTTD = t_detect - t_inject; MTTR = t_reroute - t_inject; steady = t_steady - t_inject.
//! - A false positive is a neighbour declared down while it and the observer are alive,
//!   the link between them is up, and none of the three changed within the grace period.
//! - For a Byzantine fault, `t_detect` is the first time a node other than an offender
//!   isolates an offender's address or reports an attack from it (for a replay on a link:
//!   an endpoint reports the replay from the node across). An *honest isolation* is a node
//!   that is not an offender of any Byzantine fault of the run isolating the address of
//!   another such node: collateral, and it must be zero.

use crate::ids::{NodeId, PeerAddr};
use std::collections::BTreeMap;
use crate::node::{Event, Incident, NeighbourState};
use crate::scenario::{Assertion, Fault, Metric, Stat, SteadyState};
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What is really true of the network, as the driver knows it (the simulator from its own
/// state, the live lab from the faults it applied). Used for path existence and to judge
/// detections.
#[derive(Clone, Debug)]
pub struct GroundTruth {
    edges: Vec<(NodeId, NodeId)>,
    /// For each node, (neighbour, edge index), sorted by neighbour.
    adjacency: Vec<Vec<(NodeId, u32)>>,
    /// How many active faults hold each node down (crashed or frozen).
    node_down: Vec<u16>,
    node_changed: Vec<Instant>,
    link_down: Vec<u16>,
    link_changed: Vec<Instant>,
    component: Vec<u32>,
    components_stale: bool,
}

impl GroundTruth {
    /// A graph of `nodes` nodes with undirected `edges`, all up.
    pub fn new(nodes: u32, edges: &[(NodeId, NodeId)]) -> Self {
        let n = nodes as usize;
        let mut adjacency = vec![Vec::new(); n];
        for (i, &(a, b)) in edges.iter().enumerate() {
            assert!(a.index() < n && b.index() < n, "edge {a}-{b} outside a graph of {n} nodes");
            adjacency[a.index()].push((b, i as u32));
            adjacency[b.index()].push((a, i as u32));
        }
        for list in &mut adjacency {
            list.sort_unstable();
        }
        GroundTruth {
            edges: edges.to_vec(),
            adjacency,
            node_down: vec![0; n],
            node_changed: vec![Instant::ZERO; n],
            link_down: vec![0; edges.len()],
            link_changed: vec![Instant::ZERO; edges.len()],
            component: vec![0; n],
            components_stale: true,
        }
    }

    pub fn nodes(&self) -> u32 {
        self.node_down.len() as u32
    }

    pub fn edges(&self) -> &[(NodeId, NodeId)] {
        &self.edges
    }

    pub fn neighbours(&self, node: NodeId) -> &[(NodeId, u32)] {
        &self.adjacency[node.index()]
    }

    /// The edge between `a` and `b`, if they are adjacent.
    pub fn edge_between(&self, a: NodeId, b: NodeId) -> Option<u32> {
        let list = &self.adjacency[a.index()];
        list.binary_search_by_key(&b, |&(n, _)| n).ok().map(|i| list[i].1)
    }

    pub fn node_alive(&self, node: NodeId) -> bool {
        self.node_down[node.index()] == 0
    }

    pub fn link_up(&self, edge: u32) -> bool {
        self.link_down[edge as usize] == 0
    }

    /// One more (`down = true`) or one fewer fault holds `node` down.
    pub fn set_node(&mut self, node: NodeId, down: bool, at: Instant) {
        let c = &mut self.node_down[node.index()];
        let was_alive = *c == 0;
        if down {
            *c += 1;
        } else {
            debug_assert!(*c > 0, "healing {node}, which no fault holds down");
            *c = c.saturating_sub(1);
        }
        if was_alive != (*c == 0) {
            self.node_changed[node.index()] = at;
            self.components_stale = true;
        }
    }

    /// One more or one fewer fault holds link `edge` down.
    pub fn set_link(&mut self, edge: u32, down: bool, at: Instant) {
        let c = &mut self.link_down[edge as usize];
        let was_up = *c == 0;
        if down {
            *c += 1;
        } else {
            debug_assert!(*c > 0, "healing link {edge}, which no fault holds down");
            *c = c.saturating_sub(1);
        }
        if was_up != (*c == 0) {
            self.link_changed[edge as usize] = at;
            self.components_stale = true;
        }
    }

    /// Records that a node's behaviour changed without changing liveness (a clock step),
    /// so detections caused by it right after are not counted as false positives.
    pub fn touch_node(&mut self, node: NodeId, at: Instant) {
        self.node_changed[node.index()] = at;
    }

    fn refresh_components(&mut self) {
        if !self.components_stale {
            return;
        }
        const UNSEEN: u32 = u32::MAX;
        self.component.fill(UNSEEN);
        let mut stack = Vec::new();
        let mut next = 0;
        for start in 0..self.component.len() {
            if self.component[start] != UNSEEN || self.node_down[start] > 0 {
                continue;
            }
            self.component[start] = next;
            stack.push(start);
            while let Some(u) = stack.pop() {
                for &(v, e) in &self.adjacency[u] {
                    let v = v.index();
                    if self.component[v] == UNSEEN && self.node_down[v] == 0 && self.link_down[e as usize] == 0 {
                        self.component[v] = next;
                        stack.push(v);
                    }
                }
            }
            next += 1;
        }
        self.components_stale = false;
    }

    /// Whether a path of live nodes and up links joins `a` and `b`.
    pub fn path_exists(&mut self, a: NodeId, b: NodeId) -> bool {
        if !self.node_alive(a) || !self.node_alive(b) {
            return false;
        }
        self.refresh_components();
        self.component[a.index()] == self.component[b.index()]
    }

    /// Whether `observer` declaring `peer` down at `at` is a false positive.
    pub fn is_false_positive(&self, observer: NodeId, peer: NodeId, at: Instant, grace: Duration) -> bool {
        let Some(edge) = self.edge_between(observer, peer) else {
            // Not a ground-truth neighbour: a stale or misdirected declaration, not ours to judge.
            return false;
        };
        let settled = |changed: Instant| changed + grace <= at;
        self.node_alive(observer)
            && self.node_alive(peer)
            && self.link_up(edge)
            && settled(self.node_changed[observer.index()])
            && settled(self.node_changed[peer.index()])
            && settled(self.link_changed[edge as usize])
    }
}

/// A node event with the driver's (global) time and the node that emitted it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    pub t: Instant,
    pub node: NodeId,
    pub event: Event,
}

/// One probe of a sampled pair. Every probe the workload scheduled is recorded, in send
/// order, judged or not, so that "the first probe after injection" is well defined.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    pub sent: Instant,
    pub pair: u32,
    /// Whether the probe is judged: a ground-truth path joined the pair when it was sent, the
    /// source was up to send it, and its outcome is known. Unjudged probes count nowhere.
    pub path: bool,
    pub ok: bool,
}

/// One injection of a fault, with the ground truth of what it touched.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRecord {
    /// Index of the fault in the scenario, and which repetition this is.
    pub spec: u32,
    pub instance: u32,
    pub name: String,
    pub kind: &'static str,
    pub node_fault: bool,
    /// Counted in the MTTD/MTTR/steady aggregates (see `FaultKind::is_failure`).
    pub failure: bool,
    /// A misbehaving node (or an attacker on a link), detected by isolation or an attack
    /// report rather than by failure detection.
    pub byzantine: bool,
    pub t_inject: Instant,
    pub t_heal: Option<Instant>,
    /// Sorted.
    pub nodes: Vec<NodeId>,
    /// Sorted, each pair stored as (low id, high id).
    pub links: Vec<(NodeId, NodeId)>,
}

impl FaultRecord {
    /// The record of injection `instance` of fault `spec` of a scenario, which touched
    /// `nodes` and the links between the node pairs in `links` (either order).
    pub fn new(
        spec: u32,
        instance: u32,
        fault: &Fault,
        t_inject: Instant,
        t_heal: Option<Instant>,
        mut nodes: Vec<NodeId>,
        links: impl IntoIterator<Item = (NodeId, NodeId)>,
    ) -> Self {
        nodes.sort_unstable();
        let mut links: Vec<(NodeId, NodeId)> = links.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect();
        links.sort_unstable();
        FaultRecord {
            spec,
            instance,
            name: fault.name.clone(),
            kind: fault.kind.label(),
            node_fault: fault.kind.is_node_fault(),
            // A fault whose target matched nothing broke nothing: it is reported, not measured.
            failure: fault.kind.is_failure() && !(nodes.is_empty() && links.is_empty()),
            byzantine: fault.kind.is_byzantine(),
            t_inject,
            t_heal,
            nodes,
            links,
        }
    }
}

/// What the definitions above yield for one fault.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FaultOutcome {
    pub t_detect: Option<Instant>,
    pub t_reroute: Option<Instant>,
    pub t_steady: Option<Instant>,
    /// Pairs whose first probe after injection failed.
    pub disrupted_pairs: u32,
    /// Disrupted pairs that never recovered within the recovery window.
    pub unrecovered_pairs: u32,
    pub probes_sent: u32,
    pub probes_lost: u32,
    pub false_positives: u32,
}

impl FaultOutcome {
    pub fn mttd(&self, f: &FaultRecord) -> Option<Duration> {
        self.t_detect.map(|t| t.saturating_since(f.t_inject))
    }

    pub fn mttr(&self, f: &FaultRecord) -> Option<Duration> {
        self.t_reroute.map(|t| t.saturating_since(f.t_inject))
    }

    pub fn steady(&self, f: &FaultRecord) -> Option<Duration> {
        self.t_steady.map(|t| t.saturating_since(f.t_inject))
    }

    pub fn unrecovered(&self) -> bool {
        self.unrecovered_pairs > 0
    }
}

/// Probes indexed for the per-fault computations. Probes whose outcome was still open when
/// the run ended are left out by the caller.
pub struct ProbeIndex<'a> {
    probes: &'a [ProbeRecord],
    by_pair: Vec<Vec<u32>>,
    /// Prefix counts over probes with a path: successes and total.
    ok_before: Vec<u32>,
    total_before: Vec<u32>,
}

impl<'a> ProbeIndex<'a> {
    /// `probes` must be sorted by send time.
    pub fn new(probes: &'a [ProbeRecord], pairs: u32) -> Self {
        debug_assert!(probes.windows(2).all(|w| w[0].sent <= w[1].sent), "probes not sorted");
        let mut by_pair = vec![Vec::new(); pairs as usize];
        let mut ok_before = Vec::with_capacity(probes.len() + 1);
        let mut total_before = Vec::with_capacity(probes.len() + 1);
        let (mut ok, mut total) = (0u32, 0u32);
        for (i, p) in probes.iter().enumerate() {
            ok_before.push(ok);
            total_before.push(total);
            by_pair[p.pair as usize].push(i as u32);
            if p.path {
                total += 1;
                ok += u32::from(p.ok);
            }
        }
        ok_before.push(ok);
        total_before.push(total);
        ProbeIndex { probes, by_pair, ok_before, total_before }
    }

    fn first_at_or_after(&self, t: Instant) -> usize {
        self.probes.partition_point(|p| p.sent < t)
    }

    /// (successes, total) among probes with a path sent in `[from, to)`.
    pub fn success_between(&self, from: Instant, to: Instant) -> (u32, u32) {
        let (i, j) = (self.first_at_or_after(from), self.first_at_or_after(to));
        (self.ok_before[j] - self.ok_before[i], self.total_before[j] - self.total_before[i])
    }
}

/// Everything the per-fault definitions look at besides the fault itself.
pub struct Observations<'a> {
    /// Sorted by time.
    pub events: &'a [TimedEvent],
    pub probes: &'a ProbeIndex<'a>,
    /// Times of false-positive declarations, sorted.
    pub false_positives: &'a [Instant],
    pub steady_state: &'a SteadyState,
    pub recovery_window: Duration,
    pub false_positive_grace: Duration,
    /// End of the run: nothing after it was observed.
    pub horizon: Instant,
    pub addresses: &'a AddressBook,
}

/// Which node sends from which address: the ground truth for naming whom an isolation hit.
/// The simulator's synthetic addresses name their node without an entry; the live lab
/// enters every address it gave out.
#[derive(Clone, Debug, Default)]
pub struct AddressBook(pub BTreeMap<PeerAddr, NodeId>);

impl AddressBook {
    pub fn owner(&self, addr: &PeerAddr) -> Option<NodeId> {
        self.0.get(addr).copied().or_else(|| addr.synthetic_node())
    }
}

fn detects(f: &FaultRecord, e: &TimedEvent, book: &AddressBook) -> bool {
    let target = |n: NodeId| f.nodes.binary_search(&n).is_ok();
    let on_link = |a: NodeId, b: NodeId| f.links.binary_search(&(a.min(b), a.max(b))).is_ok();
    if f.byzantine {
        return match e.event {
            Event::Incident { incident: Incident::Isolated { addr, .. } | Incident::Attack { addr, .. }, .. } => {
                match book.owner(&addr) {
                    Some(o) if f.nodes.is_empty() => on_link(e.node, o),
                    Some(o) => target(o) && !target(e.node),
                    None => false,
                }
            }
            _ => false,
        };
    }
    match e.event {
        Event::Neighbour { peer, state: NeighbourState::Suspected | NeighbourState::Down, .. } => {
            if f.node_fault { target(peer) && !target(e.node) } else { on_link(e.node, peer) }
        }
        Event::Incident { incident: Incident::NeighbourRestarted { peer, .. }, .. } => f.node_fault && target(peer),
        Event::Route { previous: Some(prev), .. } => !f.node_fault && on_link(e.node, prev),
        _ => false,
    }
}

/// For each pair the fault disrupted (its first probe sent in `[t_inject, window_end)`
/// failed while a ground-truth path existed), the send time of the first later probe that
/// succeeded, or `None` if none did before `window_end`. Pairs whose path vanished are
/// moot and left out. MTTR is the latest of these; benchmarks also report their spread.
pub fn pair_recoveries<'a>(f: &'a FaultRecord, probes: &'a ProbeIndex<'a>, window_end: Instant) -> impl Iterator<Item = Option<Instant>> + 'a {
    probes.by_pair.iter().filter_map(move |indices| {
        let mut after = indices
            .iter()
            .map(|&i| probes.probes[i as usize])
            .skip_while(|p| p.sent < f.t_inject)
            .take_while(|p| p.sent < window_end);
        let first = after.next()?;
        if !first.path || first.ok {
            return None;
        }
        match after.find(|p| !p.path || p.ok) {
            Some(p) if p.path => Some(Some(p.sent)),
            Some(_) => None,
            None => Some(None),
        }
    })
}

/// Applies the definitions to one fault.
pub fn evaluate_fault(f: &FaultRecord, obs: &Observations<'_>) -> FaultOutcome {
    let window_end = (f.t_inject + obs.recovery_window).min(obs.horizon);
    let start = obs.events.partition_point(|e| e.t < f.t_inject);
    let t_detect = obs.events[start..]
        .iter()
        .take_while(|e| e.t <= window_end)
        .find(|e| detects(f, e, obs.addresses))
        .map(|e| e.t);

    let mut t_reroute = f.t_inject;
    let (mut disrupted, mut unrecovered) = (0u32, 0u32);
    for recovery in pair_recoveries(f, obs.probes, window_end) {
        disrupted += 1;
        match recovery {
            Some(t) => t_reroute = t_reroute.max(t),
            None => unrecovered += 1,
        }
    }
    let t_reroute = (disrupted > 0 && unrecovered == 0).then_some(t_reroute);

    let t_steady = steady_since(f.t_inject, obs);

    let loss_end = f.t_heal.unwrap_or(window_end).min(window_end).max(f.t_inject);
    let (ok, total) = obs.probes.success_between(f.t_inject, loss_end);
    let fp_end = loss_end + obs.false_positive_grace;
    let fp_from = obs.false_positives.partition_point(|&t| t < f.t_inject);
    let fp_to = obs.false_positives.partition_point(|&t| t <= fp_end);
    FaultOutcome {
        t_detect,
        t_reroute,
        t_steady,
        disrupted_pairs: disrupted,
        unrecovered_pairs: unrecovered,
        probes_sent: total,
        probes_lost: total - ok,
        false_positives: (fp_to - fp_from.min(fp_to)) as u32,
    }
}

/// The earliest `T >= from` such that probes sent in `[T, T + window)` meet the hypothesis,
/// looking only at candidate starts where the window's content changes (probe send times).
pub fn steady_since(from: Instant, obs: &Observations<'_>) -> Option<Instant> {
    let window = obs.steady_state.window;
    let need = obs.steady_state.probe_success;
    let holds = |t: Instant| {
        let (ok, total) = obs.probes.success_between(t, t + window);
        // ok / total >= need, in integers: ok * 1e6 >= need_ppm * total.
        total > 0 && u64::from(ok) * 1_000_000 >= u64::from(need.ppm()) * u64::from(total)
    };
    let limit = (from + obs.recovery_window).min(obs.horizon);
    if from + window > obs.horizon {
        return None;
    }
    if holds(from) {
        return Some(from);
    }
    let first = obs.probes.first_at_or_after(from);
    obs.probes.probes[first..]
        .iter()
        .map(|p| p.sent)
        .take_while(|&t| t <= limit && t + window <= obs.horizon)
        // A window starting just after a failed probe drops it: those are the only starts
        // where the ratio can improve.
        .map(|t| t + Duration::from_nanos(1))
        .find(|&t| holds(t))
}

/// Count, mean and nearest-rank percentiles of a sample.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    /// Sorts `samples` in place. Nearest-rank percentiles are actual sample values, so they
    /// do not depend on interpolation conventions.
    pub fn of(samples: &mut [f64]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let rank = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            count: n as u64,
            mean: samples.iter().sum::<f64>() / n as f64,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: samples[n - 1],
        }
    }

    pub fn get(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Count => self.count as f64,
            Stat::Mean => self.mean,
            Stat::P50 => self.p50,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
            Stat::Max => self.max,
        }
    }
}

/// What a driver observes during one run, in the form the definitions take: the simulator
/// and the live harness both record into one, so a number means the same whatever ran.
pub struct Recorder {
    warmup: Instant,
    pairs: Vec<(NodeId, NodeId)>,
    probes: Vec<ProbeSlot>,
    records: Vec<FaultRecord>,
    events: Vec<TimedEvent>,
    false_positives: Vec<Instant>,
    addresses: AddressBook,
}

#[derive(Copy, Clone, Debug)]
struct ProbeSlot {
    sent: Instant,
    pair: u32,
    path: bool,
    ok: Option<bool>,
}

/// A finished run, evaluated.
pub struct Evaluation {
    pub faults: Vec<(FaultRecord, FaultOutcome)>,
    /// Every probe, in send order; those without an outcome are not judged.
    pub probes: Vec<ProbeRecord>,
    pub pairs: Vec<(NodeId, NodeId)>,
    /// Node events after warmup, in the order recorded.
    pub events: Vec<TimedEvent>,
    pub false_positives: u64,
    pub honest_isolated: u64,
    /// Judged probes after warmup, and how many succeeded.
    pub probes_total: u32,
    pub probes_ok: u32,
    /// Probe success between warmup and the first fault (less a probe timeout).
    pub baseline_success: Option<f64>,
}

impl Recorder {
    /// `pairs` are the sampled probe pairs; events before `warmup` are not kept.
    pub fn new(warmup: Instant, pairs: Vec<(NodeId, NodeId)>) -> Self {
        Recorder {
            warmup,
            pairs,
            probes: Vec::new(),
            records: Vec::new(),
            events: Vec::new(),
            false_positives: Vec::new(),
            addresses: AddressBook::default(),
        }
    }

    /// Names the owners of addresses that are not the simulator's synthetic ones.
    pub fn set_addresses(&mut self, book: AddressBook) {
        self.addresses = book;
    }

    pub fn pairs(&self) -> &[(NodeId, NodeId)] {
        &self.pairs
    }

    /// A probe of `pair` sent at `sent` (in time order); `path`: whether a ground-truth path
    /// joined the pair and the source was up to send it. Returns the probe's id.
    pub fn probe_sent(&mut self, sent: Instant, pair: u32, path: bool) -> u64 {
        debug_assert!(self.probes.last().is_none_or(|p| p.sent <= sent), "probes recorded out of order");
        self.probes.push(ProbeSlot { sent, pair, path, ok: None });
        self.probes.len() as u64 - 1
    }

    /// The outcome of probe `id`; unknown ids are ignored (a stray event is not a probe).
    pub fn probe_outcome(&mut self, id: u64, ok: bool) {
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| self.probes.get_mut(i)) {
            slot.ok = Some(ok);
        }
    }

    /// A node event; kept if at or after warmup. Events must come in time order.
    pub fn event(&mut self, e: TimedEvent) {
        if e.t >= self.warmup {
            self.events.push(e);
        }
    }

    /// A neighbour declared down while it was alive and reachable (ground truth), at `t`.
    pub fn false_positive(&mut self, t: Instant) {
        if t >= self.warmup {
            self.false_positives.push(t);
        }
    }

    pub fn fault(&mut self, record: FaultRecord) {
        self.records.push(record);
    }

    /// Applies the definitions to everything recorded up to `horizon`.
    pub fn finish(self, steady_state: &SteadyState, recovery_window: Duration, false_positive_grace: Duration, probe_timeout: Duration, horizon: Instant) -> Evaluation {
        let probes: Vec<ProbeRecord> = self
            .probes
            .iter()
            // A probe without an outcome (its source died with it pending, or the run ended)
            // is kept but not judged, so "the first probe after injection" stays exact.
            .map(|p| ProbeRecord { sent: p.sent, pair: p.pair, path: p.path && p.ok.is_some(), ok: p.ok.unwrap_or(false) })
            .collect();
        let index = ProbeIndex::new(&probes, self.pairs.len() as u32);
        let obs = Observations {
            events: &self.events,
            probes: &index,
            false_positives: &self.false_positives,
            steady_state,
            recovery_window,
            false_positive_grace,
            horizon,
            addresses: &self.addresses,
        };
        let faults = self.records.iter().map(|r| (r.clone(), evaluate_fault(r, &obs))).collect();
        let (probes_ok, probes_total) = index.success_between(self.warmup, horizon);
        // Probes still in flight when the first fault struck belong to neither side.
        let first_fault = self.records.iter().map(|r| r.t_inject).min().unwrap_or(horizon);
        let baseline_end = first_fault.saturating_sub(probe_timeout);
        let (base_ok, base_total) = index.success_between(self.warmup, baseline_end.max(self.warmup));
        drop(index);
        let honest_isolated = honest_isolations(&self.records, &self.events, &self.addresses);
        Evaluation {
            faults,
            probes,
            pairs: self.pairs,
            events: self.events,
            false_positives: self.false_positives.len() as u64,
            honest_isolated,
            probes_total,
            probes_ok,
            baseline_success: (base_total > 0).then(|| f64::from(base_ok) / f64::from(base_total)),
        }
    }
}

/// Isolations by nodes that are not offenders of any Byzantine fault of the run, of
/// addresses owned by such nodes (see the definitions at the top).
pub fn honest_isolations(records: &[FaultRecord], events: &[TimedEvent], book: &AddressBook) -> u64 {
    let mut offenders: Vec<NodeId> = records.iter().filter(|r| r.byzantine).flat_map(|r| r.nodes.iter().copied()).collect();
    offenders.sort_unstable();
    let offender = |n: NodeId| offenders.binary_search(&n).is_ok();
    let isolated = events.iter().filter_map(|e| match e.event {
        Event::Incident { incident: Incident::Isolated { addr, .. }, .. } if !offender(e.node) => book.owner(&addr),
        _ => None,
    });
    isolated.filter(|&o| !offender(o)).count() as u64
}

/// Run-wide measurements of one seed, besides per-fault outcomes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCounters {
    pub nodes: u64,
    pub loops: u64,
    pub false_positives: u64,
    #[serde(default)]
    pub honest_isolated: u64,
    /// Probes after warmup with a path, and how many succeeded.
    pub probes: u64,
    pub probes_ok: u64,
    pub control_bytes: u64,
    /// Measured seconds (after warmup), for rates.
    pub measured_seconds: f64,
    pub stretch: Vec<f64>,
}

/// Aggregates over every fault of every seed: what tables, files and assertions report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Failures injected (clock faults are not failures; see `FaultKind::is_failure`).
    pub faults: u64,
    pub detected: u64,
    pub disrupted: u64,
    pub unrecovered: u64,
    /// Milliseconds.
    pub mttd: Stats,
    pub mttr: Stats,
    pub steady: Stats,
    pub stretch: Stats,
    pub loops: u64,
    pub false_positives: u64,
    /// Honest nodes isolated by honest nodes: collateral of Byzantine detection.
    #[serde(default)]
    pub honest_isolated: u64,
    pub probes: u64,
    pub probe_success: f64,
    /// Control bytes per node per second.
    pub overhead: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Summary {
    /// Aggregates seeds: every seed contributes its faults and its counters.
    pub fn of(runs: &[(&[(FaultRecord, FaultOutcome)], &RunCounters)]) -> Summary {
        let (mut mttd, mut mttr, mut steady, mut stretch) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut s = Summary::default();
        let (mut probes_ok, mut bytes, mut node_seconds) = (0u64, 0u64, 0f64);
        for (faults, c) in runs {
            for (f, o) in faults.iter().filter(|(f, _)| f.failure) {
                s.faults += 1;
                if let Some(d) = o.mttd(f) {
                    s.detected += 1;
                    mttd.push(ms(d));
                }
                if o.disrupted_pairs > 0 {
                    s.disrupted += 1;
                }
                if o.unrecovered() {
                    s.unrecovered += 1;
                }
                if let Some(d) = o.mttr(f) {
                    mttr.push(ms(d));
                }
                if let Some(d) = o.steady(f) {
                    steady.push(ms(d));
                }
            }
            s.loops += c.loops;
            s.false_positives += c.false_positives;
            s.honest_isolated += c.honest_isolated;
            s.probes += c.probes;
            probes_ok += c.probes_ok;
            bytes += c.control_bytes;
            node_seconds += c.nodes as f64 * c.measured_seconds;
            stretch.extend_from_slice(&c.stretch);
        }
        s.mttd = Stats::of(&mut mttd);
        s.mttr = Stats::of(&mut mttr);
        s.steady = Stats::of(&mut steady);
        s.stretch = Stats::of(&mut stretch);
        s.probe_success = if s.probes == 0 { 0.0 } else { probes_ok as f64 / s.probes as f64 };
        s.overhead = if node_seconds > 0.0 { bytes as f64 / node_seconds } else { 0.0 };
        s
    }

    /// The value an assertion compares, in its unit; `None` when there is no sample.
    pub fn value(&self, metric: Metric, stat: Option<Stat>) -> Option<f64> {
        let dist = |s: &Stats| match stat {
            Some(Stat::Count) => Some(s.count as f64),
            Some(st) if s.count > 0 => Some(s.get(st)),
            _ => None,
        };
        match metric {
            Metric::Mttd => dist(&self.mttd),
            Metric::Mttr => dist(&self.mttr),
            Metric::Steady => dist(&self.steady),
            Metric::Stretch => dist(&self.stretch),
            Metric::Loops => Some(self.loops as f64),
            Metric::FalsePositives => Some(self.false_positives as f64),
            Metric::HonestIsolated => Some(self.honest_isolated as f64),
            Metric::Unrecovered => Some(self.unrecovered as f64),
            Metric::Undetected => Some((self.faults - self.detected) as f64),
            Metric::ProbeSuccess => (self.probes > 0).then_some(self.probe_success),
            Metric::Overhead => Some(self.overhead),
        }
    }

    pub fn check(&self, a: &Assertion) -> AssertionResult {
        let actual = self.value(a.metric, a.stat);
        AssertionResult {
            assertion: a.text.clone(),
            actual,
            passed: actual.is_some_and(|v| a.comparison.holds(v, a.threshold.value())),
        }
    }
}

/// The outcome of one assertion. `actual` is `None` when the metric had no sample, which
/// fails the assertion: a claim about nothing is not evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssertionResult {
    pub assertion: String,
    pub actual: Option<f64>,
    pub passed: bool,
}
