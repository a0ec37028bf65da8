//! The discrete-event simulator: virtual time in integer nanoseconds, one event queue
//! ordered by (time, sequence number), and nothing else deciding order. It moves bytes and
//! time in and out of the core's [`Node`]s; it holds no protocol logic.

use crate::checkers;
use crate::faults;
use crate::identity::Identities;
use crate::net::{Direction, Fate, LinkParams};
use crate::seed;
use crate::topology::Topology;
use petgraph::visit::EdgeRef;
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use crate::queue::EventQueue;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;
use thiserror::Error;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{Dest, IfIndex, NodeId, PeerAddr};
use x0tta6bl4::metrics::{FaultOutcome, FaultRecord, GroundTruth, ProbeRecord, Recorder, RunCounters, TimedEvent};
use x0tta6bl4::node::{Behaviour, Command, Event, NeighbourState, Node, ProbeOutcome, StateBytes, TrafficClass};
use x0tta6bl4::scenario::{Degrade, FLOOD_FRAME_LEN, FaultKind, LinkTarget, Scenario, ScenarioError, StateMode, error_at};
use x0tta6bl4::time::{Instant, NodeClock, duration_nanos};
use x0tta6bl4::trace::{Digest, Fingerprint};

/// Packets a frozen node's socket buffer holds; more are dropped, as the kernel would.
const PAUSE_BUFFER_PACKETS: usize = 1024;
/// Loops kept as examples for the report (all are counted).
const LOOP_EXAMPLES_MAX: usize = 16;
/// How often (in events) the progress counter is refreshed.
const PROGRESS_EVERY: u64 = 1 << 14;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

#[derive(Copy, Clone, Debug)]
enum Ev {
    Deliver { to: u32, iface: u16, link: u32, pkt: u32 },
    Timer { node: u32, generation: u32 },
    Inject { instance: u32 },
    Heal { instance: u32 },
    Flap { instance: u32 },
    Flood { instance: u32 },
    Probe { pair: u32 },
    LoopCheck,
    StretchCheck,
}

/// Frame buffers recycled between transmissions: no allocation per packet once warm.
#[derive(Default)]
struct Pool {
    bufs: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl Pool {
    fn alloc(&mut self, bytes: &[u8]) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let b = &mut self.bufs[i as usize];
                b.clear();
                b.extend_from_slice(bytes);
                i
            }
            None => {
                self.bufs.push(bytes.to_vec());
                (self.bufs.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, i: u32) {
        self.free.push(i);
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Status {
    Running,
    /// No process (crashed, or between stop and start of a restart).
    Stopped,
    /// Frozen: packets wait in the socket buffer, timers wait.
    Paused,
}

struct SimNode {
    node: Option<Box<Node>>,
    status: Status,
    /// Interface i is link `ifaces[i].0`, sending in direction `ifaces[i].1`.
    ifaces: Vec<(u32, u8)>,
    timer_generation: u32,
    timer_at: Option<u64>,
    clock: NodeClock,
    boots: u64,
    inbox: VecDeque<(u16, u32, u32)>,
    /// Set while an `impersonate` fault has the node pose as this other node.
    posing_as: Option<u32>,
}

struct Link {
    ends: [NodeId; 2],
    ifaces: [IfIndex; 2],
    dirs: [Direction; 2],
    degrades: Vec<(u32, Degrade)>,
    /// Replay attackers on this link: (fault instance, delay in ns).
    replays: Vec<(u32, u64)>,
}

struct Instance {
    spec: u32,
    k: u32,
    t_heal: Option<u64>,
    nodes: Vec<NodeId>,
    links: Vec<u32>,
    flap_down: bool,
    /// Where a malformed flood's bytes come from.
    flood_rng: Option<ChaCha8Rng>,
}

/// A forwarding loop the checker saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopSample {
    pub at: Instant,
    pub dest: NodeId,
    pub cycle: Vec<NodeId>,
}

/// Engine counters: what happened to packets and how much work the run was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub frames_sent: u64,
    pub frames_delivered: u64,
    pub frames_lost: u64,
    pub frames_queue_dropped: u64,
    pub frames_link_down: u64,
    pub frames_to_stopped: u64,
    pub frames_pause_dropped: u64,
    pub frames_misaddressed: u64,
    pub frames_duplicated: u64,
    pub frames_corrupted: u64,
    /// Copies sent again by replay attackers, and malformed frames sent by floods.
    pub frames_replayed: u64,
    pub frames_flooded: u64,
    /// Timer wake-ups that found nothing due and asked again for the same instant. Zero in a
    /// healthy run; counted because a core bug here would otherwise hang the simulator.
    pub timer_spins: u64,
}

/// Everything one seed produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub seed: u64,
    pub fingerprint: Digest,
    pub trace_records: u64,
    pub nodes: u32,
    pub links: usize,
    pub faults: Vec<(FaultRecord, FaultOutcome)>,
    pub counters: RunCounters,
    /// Probe success between warmup and the first fault: whether the hypothesis held
    /// before anything was broken.
    pub baseline_success: Option<f64>,
    pub loop_examples: Vec<LoopSample>,
    pub engine: EngineStats,
    pub sim_seconds: f64,
    /// Route-table entries summed over live nodes at the end.
    pub route_entries: u64,
    /// Memory held by live nodes at the end, summed, and how many nodes that is.
    pub state_bytes: StateBytes,
    pub live_nodes: u32,
    /// The raw observations the metrics were computed from, for `x0 run --trace` and for
    /// anyone who wants to check a number by hand.
    pub trace: Trace,
}

/// Everything observed after warmup: node events, and every probe of every sampled pair.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub events: Vec<TimedEvent>,
    pub probes: Vec<ProbeRecord>,
    pub pairs: Vec<(NodeId, NodeId)>,
}

pub struct Simulation<'a> {
    scenario: &'a Scenario,
    topo: &'a Topology,
    /// The scenario's protocol section plus the topology's area plan: what every node runs.
    protocol: ProtocolConfig,
    /// Present when the scenario asks for link security.
    identities: Option<Identities>,
    seed: u64,
    now: u64,
    end: u64,
    warmup: u64,
    queue: EventQueue<Ev>,
    nodes: Vec<SimNode>,
    links: Vec<Link>,
    pool: Pool,
    gt: GroundTruth,
    buf: Vec<u8>,
    rec: Recorder,
    instances: Vec<Instance>,
    loops: u64,
    loop_examples: Vec<LoopSample>,
    stretch: Vec<f64>,
    control_bytes: u64,
    check_rng: ChaCha8Rng,
    fingerprint: Fingerprint,
    stats: EngineStats,
}

fn ns(d: Duration) -> u64 {
    duration_nanos(d)
}

impl<'a> Simulation<'a> {
    /// Builds the world for one seed: nodes, links, workload, fault schedule.
    pub fn new(scenario: &'a Scenario, topo: &'a Topology, seed: u64) -> Result<Self, SimError> {
        scenario.check_node_ids(topo.node_count())?;
        check_links(scenario, topo)?;
        let n = topo.node_count();
        let gt = GroundTruth::new(n, &topo.edge_list());
        let mut nodes: Vec<SimNode> = (0..n)
            .map(|_| SimNode {
                node: None,
                status: Status::Stopped,
                ifaces: Vec::new(),
                timer_generation: 0,
                timer_at: None,
                clock: NodeClock::default(),
                boots: 0,
                inbox: VecDeque::new(),
                posing_as: None,
            })
            .collect();
        let mut links = Vec::with_capacity(topo.edge_count());
        for e in topo.graph.edge_references() {
            let (a, b) = (e.source().index(), e.target().index());
            let info = e.weight();
            let id = e.id().index() as u64;
            let delivery = |i: usize| info.delivery.map(|d| d[i]);
            let dir = |i: usize| {
                let p = LinkParams::new(&scenario.links, info.latency, delivery(i));
                Direction::new(p, seed::stream(seed, "link", id, i as u64))
            };
            let ia = IfIndex(nodes[a].ifaces.len() as u16);
            nodes[a].ifaces.push((e.id().index() as u32, 0));
            let ib = IfIndex(nodes[b].ifaces.len() as u16);
            nodes[b].ifaces.push((e.id().index() as u32, 1));
            links.push(Link {
                ends: [NodeId(a as u32), NodeId(b as u32)],
                ifaces: [ia, ib],
                dirs: [dir(0), dir(1)],
                degrades: Vec::new(),
                replays: Vec::new(),
            });
        }
        let workload = probe_workload(scenario, n, seed);
        let pairs = workload.iter().map(|&(pair, _)| pair).collect();
        let mut sim = Simulation {
            scenario,
            topo,
            protocol: topo.node_protocol(&scenario.protocol),
            identities: scenario.security.as_ref().map(|s| Identities::new(s, seed, n)),
            seed,
            now: 0,
            end: ns(scenario.duration),
            warmup: ns(scenario.warmup),
            queue: EventQueue::default(),
            nodes,
            links,
            pool: Pool::default(),
            gt,
            buf: Vec::with_capacity(2048),
            rec: Recorder::new(Instant::from_nanos(ns(scenario.warmup)), pairs),
            instances: Vec::new(),
            loops: 0,
            loop_examples: Vec::new(),
            stretch: Vec::new(),
            control_bytes: 0,
            check_rng: seed::stream(seed, "checks", 0, 0),
            fingerprint: Fingerprint::default(),
            stats: EngineStats::default(),
        };
        for (pair, &(_, phase)) in workload.iter().enumerate() {
            sim.push(phase, Ev::Probe { pair: pair as u32 });
        }
        sim.schedule_faults();
        let (loop_every, stretch_every) = (ns(scenario.checks.loop_interval), ns(scenario.checks.stretch_interval));
        sim.push(loop_every, Ev::LoopCheck);
        sim.push(sim.warmup.max(stretch_every), Ev::StretchCheck);
        for i in 0..n {
            sim.boot(i);
        }
        Ok(sim)
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.queue.push(t, ev);
    }

    fn schedule_faults(&mut self) {
        for (spec, fault) in self.scenario.faults.iter().enumerate() {
            for (k, t) in fault.injection_times(self.scenario.duration).into_iter().enumerate() {
                let t_inject = ns(t);
                let t_heal = fault.heal_time(t).map(ns);
                let instance = self.instances.len() as u32;
                self.instances.push(Instance {
                    spec: spec as u32,
                    k: k as u32,
                    t_heal,
                    nodes: Vec::new(),
                    links: Vec::new(),
                    flap_down: false,
                    flood_rng: None,
                });
                self.push(t_inject, Ev::Inject { instance });
                if let Some(h) = t_heal
                    && h < self.end
                {
                    self.push(h, Ev::Heal { instance });
                }
            }
        }
    }

    // ----- node lifecycle -------------------------------------------------------------------

    fn local_now(&self, i: u32) -> Instant {
        self.nodes[i as usize].clock.local(self.now)
    }

    /// Starts node `i` as a fresh process.
    fn boot(&mut self, i: u32) {
        let local = self.local_now(i);
        let sn = &mut self.nodes[i as usize];
        let key = seed::key(self.seed, "node", u64::from(i), sn.boots);
        sn.boots += 1;
        let node = match self.identities.as_mut() {
            Some(ids) => {
                let trust = match sn.posing_as {
                    Some(victim) => ids.impostor(i, victim),
                    None => ids.trust(i),
                };
                Node::new_secure(self.protocol.clone(), trust, key, local)
            }
            None => Node::new(NodeId(i), self.protocol.clone(), key, local),
        };
        let mut node = Box::new(node.expect("protocol config validated at load"));
        for _ in 0..sn.ifaces.len() {
            node.add_interface(local);
        }
        sn.node = Some(node);
        sn.status = Status::Running;
        self.drain(i, false);
    }

    fn stop(&mut self, i: u32, keep_state: bool) {
        let sn = &mut self.nodes[i as usize];
        if !keep_state {
            sn.node = None;
        }
        sn.status = Status::Stopped;
        sn.timer_generation += 1;
        sn.timer_at = None;
        for (_, _, pkt) in sn.inbox.drain(..) {
            self.pool.release(pkt);
        }
    }

    fn pause(&mut self, i: u32) {
        let sn = &mut self.nodes[i as usize];
        sn.status = Status::Paused;
        sn.timer_generation += 1;
        sn.timer_at = None;
    }

    fn unpause(&mut self, i: u32) {
        let local = self.local_now(i);
        let sn = &mut self.nodes[i as usize];
        sn.status = Status::Running;
        let mut node = sn.node.take().expect("a paused node keeps its process");
        let inbox = std::mem::take(&mut sn.inbox);
        for &(iface, link, pkt) in &inbox {
            let from = self.peer_across(link, i);
            node.handle_datagram(local, IfIndex(iface), PeerAddr::synthetic(from), &self.pool.bufs[pkt as usize]);
            self.pool.release(pkt);
        }
        node.handle_timeout(local);
        let sn = &mut self.nodes[i as usize];
        sn.inbox = inbox;
        sn.inbox.clear();
        sn.node = Some(node);
        self.drain(i, false);
    }

    fn resume_kept(&mut self, i: u32) {
        let local = self.local_now(i);
        let sn = &mut self.nodes[i as usize];
        sn.status = Status::Running;
        sn.node.as_mut().expect("restart with state keeps the node").resume(local);
        self.drain(i, false);
    }

    fn peer_across(&self, link: u32, me: u32) -> NodeId {
        let l = &self.links[link as usize];
        if l.ends[0].0 == me { l.ends[1] } else { l.ends[0] }
    }

    /// Collects everything node `i` produced after an input, and re-arms its timer.
    /// `after_timer` says the input was a timer at `now`, to catch a node asking to be woken
    /// again for the same instant.
    fn drain(&mut self, i: u32, after_timer: bool) {
        let Some(mut node) = self.nodes[i as usize].node.take() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(tx) = node.poll_transmit(&mut buf) {
            self.transmit(i, tx.iface, tx.dest, tx.class, &buf);
        }
        while node.poll_delivery(&mut buf).is_some() {}
        self.buf = buf;
        while let Some(ev) = node.poll_event() {
            self.observe(i, ev);
        }
        let sn = &mut self.nodes[i as usize];
        let mut want = sn.clock.global(node.poll_timeout()).max(self.now);
        if after_timer && want <= self.now {
            self.stats.timer_spins += 1;
            want = self.now + 1_000;
        }
        sn.node = Some(node);
        if sn.timer_at.is_none_or(|t| want < t) {
            sn.timer_generation += 1;
            sn.timer_at = Some(want);
            let generation = sn.timer_generation;
            self.push(want, Ev::Timer { node: i, generation });
        }
    }

    fn transmit(&mut self, from: u32, iface: IfIndex, dest: Dest, class: TrafficClass, bytes: &[u8]) {
        self.stats.frames_sent += 1;
        if class != TrafficClass::Data && self.now >= self.warmup {
            self.control_bytes += bytes.len() as u64;
        }
        let (link_idx, dir) = self.nodes[from as usize].ifaces[iface.index()];
        let link = &mut self.links[link_idx as usize];
        let to = link.ends[1 - dir as usize];
        if let Dest::Unicast(addr) = dest
            && addr != PeerAddr::synthetic(to)
        {
            self.stats.frames_misaddressed += 1;
            return;
        }
        if !self.gt.link_up(link_idx) {
            self.stats.frames_link_down += 1;
            return;
        }
        let to_iface = link.ifaces[1 - dir as usize];
        match link.dirs[dir as usize].send(self.now, bytes.len()) {
            Fate::Lost => self.stats.frames_lost += 1,
            Fate::QueueFull => self.stats.frames_queue_dropped += 1,
            Fate::Delivered { at_ns, duplicate_at_ns, corrupt } => {
                let pkt = self.pool.alloc(bytes);
                if let Some((offset, mask)) = corrupt {
                    self.stats.frames_corrupted += 1;
                    let b = &mut self.pool.bufs[pkt as usize];
                    let at = offset as usize % b.len();
                    b[at] ^= mask;
                }
                let deliver = Ev::Deliver { to: to.0, iface: to_iface.0, link: link_idx, pkt };
                self.push(at_ns, deliver);
                for k in 0..self.links[link_idx as usize].replays.len() {
                    let delay = self.links[link_idx as usize].replays[k].1;
                    self.stats.frames_replayed += 1;
                    let copy = self.pool.alloc(bytes);
                    self.push(at_ns + delay, Ev::Deliver { to: to.0, iface: to_iface.0, link: link_idx, pkt: copy });
                }
                if let Some(t) = duplicate_at_ns {
                    self.stats.frames_duplicated += 1;
                    let copy = self.pool.alloc(bytes);
                    self.push(t, Ev::Deliver { to: to.0, iface: to_iface.0, link: link_idx, pkt: copy });
                }
            }
        }
    }

    fn observe(&mut self, i: u32, ev: Event) {
        let now = Instant::from_nanos(self.now);
        let node = NodeId(i);
        self.fingerprint.event(now, node, &ev);
        match ev {
            Event::Probe { id, outcome, .. } => {
                self.rec.probe_outcome(id, matches!(outcome, ProbeOutcome::Delivered { .. }));
                return;
            }
            Event::Neighbour { peer, state: NeighbourState::Down, .. } => {
                let grace = self.scenario.checks.false_positive_grace;
                if self.now >= self.warmup && self.gt.is_false_positive(node, peer, now, grace) {
                    self.rec.false_positive(now);
                }
            }
            _ => {}
        }
        self.rec.event(TimedEvent { t: now, node, event: ev });
    }

    // ----- the loop -------------------------------------------------------------------------

    /// Runs to the end of the scenario and evaluates every fault.
    pub fn run(mut self, progress: Option<&AtomicU64>) -> RunResult {
        while let Some((t, ev)) = self.queue.pop() {
            if t > self.end {
                break;
            }
            debug_assert!(t >= self.now, "event queue went back in time");
            self.now = t;
            self.stats.events += 1;
            if let Some(p) = progress
                && self.stats.events.is_multiple_of(PROGRESS_EVERY)
            {
                p.store(self.now, AtomicOrdering::Relaxed);
            }
            match ev {
                Ev::Deliver { to, iface, link, pkt } => self.deliver(to, iface, link, pkt),
                Ev::Timer { node, generation } => self.timer(node, generation),
                Ev::Inject { instance } => self.inject(instance),
                Ev::Heal { instance } => self.heal(instance),
                Ev::Flap { instance } => self.flap(instance),
                Ev::Flood { instance } => self.flood(instance),
                Ev::Probe { pair } => self.probe(pair),
                Ev::LoopCheck => self.loop_check(),
                Ev::StretchCheck => self.stretch_check(),
            }
        }
        if let Some(p) = progress {
            p.store(self.end, AtomicOrdering::Relaxed);
        }
        self.finish()
    }

    fn deliver(&mut self, to: u32, iface: u16, link: u32, pkt: u32) {
        if !self.gt.link_up(link) {
            // The link went down while the frame was on it.
            self.stats.frames_link_down += 1;
            self.pool.release(pkt);
            return;
        }
        let sn = &mut self.nodes[to as usize];
        match sn.status {
            Status::Stopped => {
                self.stats.frames_to_stopped += 1;
                self.pool.release(pkt);
            }
            Status::Paused => {
                if sn.inbox.len() < PAUSE_BUFFER_PACKETS {
                    sn.inbox.push_back((iface, link, pkt));
                } else {
                    self.stats.frames_pause_dropped += 1;
                    self.pool.release(pkt);
                }
            }
            Status::Running => {
                self.stats.frames_delivered += 1;
                let from = self.peer_across(link, to);
                let local = self.local_now(to);
                let node = self.nodes[to as usize].node.as_mut().expect("a running node has a process");
                node.handle_datagram(local, IfIndex(iface), PeerAddr::synthetic(from), &self.pool.bufs[pkt as usize]);
                self.pool.release(pkt);
                self.drain(to, false);
            }
        }
    }

    fn timer(&mut self, i: u32, generation: u32) {
        let sn = &mut self.nodes[i as usize];
        if generation != sn.timer_generation || sn.status != Status::Running {
            return;
        }
        sn.timer_at = None;
        let local = sn.clock.local(self.now);
        sn.node.as_mut().expect("a running node has a process").handle_timeout(local);
        self.drain(i, true);
    }

    fn probe(&mut self, pair: u32) {
        let interval = ns(self.scenario.workload.probe_interval);
        self.push(self.now + interval, Ev::Probe { pair });
        let (src, dst) = self.rec.pairs()[pair as usize];
        let path = self.gt.path_exists(src, dst);
        let running = self.nodes[src.index()].status == Status::Running;
        // A probe a stopped or frozen source cannot send has no outcome, and is left out.
        let id = self.rec.probe_sent(Instant::from_nanos(self.now), pair, path && running);
        if !running {
            return;
        }
        let local = self.local_now(src.0);
        let node = self.nodes[src.index()].node.as_mut().expect("a running node has a process");
        if node.handle_command(local, Command::Probe { dst, id }).is_err() {
            self.rec.probe_outcome(id, false);
        }
        self.drain(src.0, false);
    }

    fn next_hop(&self, n: NodeId, dest: NodeId) -> Option<NodeId> {
        let sn = &self.nodes[n.index()];
        if sn.status != Status::Running {
            return None;
        }
        sn.node.as_ref()?.next_hop(dest)
    }

    fn loop_check(&mut self) {
        self.push(self.now + ns(self.scenario.checks.loop_interval), Ev::LoopCheck);
        let n = self.topo.node_count();
        for _ in 0..self.scenario.checks.loop_destinations {
            let dest = NodeId(self.check_rng.random_range(0..n));
            if let Some(cycle) = checkers::find_loop(n, dest, |m| self.next_hop(m, dest)) {
                self.loops += 1;
                self.fingerprint.driver(1, &[self.now, u64::from(dest.0), cycle.len() as u64]);
                if self.loop_examples.len() < LOOP_EXAMPLES_MAX {
                    self.loop_examples.push(LoopSample { at: Instant::from_nanos(self.now), dest, cycle });
                }
            }
        }
    }

    fn stretch_check(&mut self) {
        self.push(self.now + ns(self.scenario.checks.stretch_interval), Ev::StretchCheck);
        let n = self.topo.node_count();
        for _ in 0..self.scenario.checks.stretch_pairs {
            let (src, dst) = (NodeId(self.check_rng.random_range(0..n)), NodeId(self.check_rng.random_range(0..n)));
            if src == dst || !self.gt.path_exists(src, dst) {
                continue;
            }
            if let Some(s) = checkers::stretch(&self.topo.graph, &self.gt, src, dst, |m| self.next_hop(m, dst)) {
                self.stretch.push(s);
            }
        }
    }

    // ----- faults ---------------------------------------------------------------------------

    fn inject(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let (spec, k) = (inst.spec, inst.k);
        let fault = &self.scenario.faults[spec as usize];
        let mut rng = seed::stream(self.seed, "fault", u64::from(spec), u64::from(k));
        let now = Instant::from_nanos(self.now);
        let (mut nodes, mut links) = (Vec::new(), Vec::new());
        match &fault.kind {
            FaultKind::Crash(t) | FaultKind::Pause(t) => {
                nodes = faults::pick_nodes(t, self.topo, &self.gt, &mut rng);
                let pause = matches!(fault.kind, FaultKind::Pause(_));
                for &n in &nodes {
                    if pause { self.pause(n.0) } else { self.stop(n.0, false) }
                    self.gt.set_node(n, true, now);
                }
            }
            FaultKind::Restart { target, state } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                for &n in &nodes {
                    self.stop(n.0, *state == StateMode::Keep);
                    self.gt.set_node(n, true, now);
                }
            }
            FaultKind::LinkDown(t) | FaultKind::LinkFlap { target: t, .. } => {
                links = faults::pick_links(t, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.gt.set_link(e, true, now);
                }
                if let FaultKind::LinkFlap { period, .. } = fault.kind {
                    self.instances[instance as usize].flap_down = true;
                    self.push(self.now + ns(period) / 2, Ev::Flap { instance });
                }
            }
            FaultKind::Partition(p) => {
                let groups = faults::partition_groups(p, self.topo, &mut rng);
                links = faults::cut_edges(&groups, self.topo);
                for &e in &links {
                    self.gt.set_link(e, true, now);
                }
            }
            FaultKind::Degrade(d) => {
                links = faults::pick_links(&d.target, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.links[e as usize].degrades.push((instance, d.clone()));
                    self.apply_degrades(e);
                }
            }
            FaultKind::Clock { target, skew_ns, drift_ppm } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                for &n in &nodes {
                    self.nodes[n.index()].clock.adjust(self.now, *skew_ns, i64::from(*drift_ppm));
                    self.gt.touch_node(n, now);
                    self.rearm(n.0);
                }
            }
            FaultKind::Blackhole(t) | FaultKind::GreyHole { target: t, .. } => {
                nodes = faults::pick_nodes(t, self.topo, &self.gt, &mut rng);
                let behaviour = match fault.kind {
                    FaultKind::GreyHole { drop, .. } => Behaviour::GreyHole { drop },
                    _ => Behaviour::Blackhole,
                };
                for &n in &nodes {
                    self.set_behaviour(n.0, behaviour);
                }
            }
            FaultKind::Replay { target, delay } => {
                links = faults::pick_links(target, self.topo, &self.gt, &mut rng);
                for &e in &links {
                    self.links[e as usize].replays.push((instance, ns(*delay)));
                }
            }
            FaultKind::Impersonate { target, victim } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                nodes.retain(|n| n.0 != victim.value);
                for &n in &nodes {
                    // Its honest self is gone: to the ground truth it is down.
                    self.stop(n.0, false);
                    self.gt.set_node(n, true, now);
                    self.nodes[n.index()].posing_as = Some(victim.value);
                    self.boot(n.0);
                }
            }
            FaultKind::MalformedFlood { target, .. } => {
                nodes = faults::pick_nodes(target, self.topo, &self.gt, &mut rng);
                self.instances[instance as usize].flood_rng = Some(rng.clone());
                self.push(self.now, Ev::Flood { instance });
            }
        }
        self.fingerprint.driver(2, &[self.now, u64::from(spec), u64::from(k), nodes.len() as u64, links.len() as u64]);
        let t_heal = self.instances[instance as usize].t_heal.map(Instant::from_nanos);
        let ends = links.iter().map(|&e| {
            let [a, b] = self.links[e as usize].ends;
            (a, b)
        });
        let record = FaultRecord::new(spec, k, fault, now, t_heal, nodes.clone(), ends);
        self.rec.fault(record);
        let inst = &mut self.instances[instance as usize];
        inst.nodes = nodes;
        inst.links = links;
    }

    fn heal(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let fault = &self.scenario.faults[inst.spec as usize];
        let now = Instant::from_nanos(self.now);
        let (nodes, links) = (inst.nodes.clone(), inst.links.clone());
        let flap_down = inst.flap_down;
        match &fault.kind {
            FaultKind::Crash(_) => {
                for &n in &nodes {
                    self.gt.set_node(n, false, now);
                    self.boot(n.0);
                }
            }
            FaultKind::Restart { state, .. } => {
                for &n in &nodes {
                    self.gt.set_node(n, false, now);
                    if *state == StateMode::Keep { self.resume_kept(n.0) } else { self.boot(n.0) }
                }
            }
            FaultKind::Pause(_) => {
                for &n in &nodes {
                    self.gt.set_node(n, false, now);
                    self.unpause(n.0);
                }
            }
            FaultKind::LinkDown(_) | FaultKind::Partition(_) => {
                for &e in &links {
                    self.gt.set_link(e, false, now);
                }
            }
            FaultKind::LinkFlap { .. } => {
                if flap_down {
                    for &e in &links {
                        self.gt.set_link(e, false, now);
                    }
                }
                self.instances[instance as usize].flap_down = false;
            }
            FaultKind::Degrade(_) => {
                for &e in &links {
                    self.links[e as usize].degrades.retain(|(i, _)| *i != instance);
                    self.apply_degrades(e);
                }
            }
            FaultKind::Clock { drift_ppm, .. } => {
                for &n in &nodes {
                    self.nodes[n.index()].clock.adjust(self.now, 0, -i64::from(*drift_ppm));
                    self.gt.touch_node(n, now);
                    self.rearm(n.0);
                }
            }
            FaultKind::Blackhole(_) | FaultKind::GreyHole { .. } => {
                for &n in &nodes {
                    self.set_behaviour(n.0, Behaviour::Honest);
                }
            }
            FaultKind::Replay { .. } => {
                for &e in &links {
                    self.links[e as usize].replays.retain(|(i, _)| *i != instance);
                }
            }
            FaultKind::Impersonate { .. } => {
                for &n in &nodes {
                    self.stop(n.0, false);
                    self.nodes[n.index()].posing_as = None;
                    self.gt.set_node(n, false, now);
                    self.boot(n.0);
                }
            }
            // The flood's own events stop at the heal time.
            FaultKind::MalformedFlood { .. } => {}
        }
        self.fingerprint.driver(3, &[self.now, u64::from(instance)]);
    }

    fn flap(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let FaultKind::LinkFlap { period, .. } = self.scenario.faults[inst.spec as usize].kind else { return };
        if inst.t_heal.is_some_and(|h| self.now >= h) {
            return;
        }
        let now = Instant::from_nanos(self.now);
        let down = !inst.flap_down;
        for &e in &inst.links.clone() {
            self.gt.set_link(e, down, now);
        }
        self.instances[instance as usize].flap_down = down;
        self.fingerprint.driver(4, &[self.now, u64::from(instance), u64::from(down)]);
        self.push(self.now + ns(period) / 2, Ev::Flap { instance });
    }

    /// Makes a running node misbehave (or behave again); a stopped one is left alone.
    fn set_behaviour(&mut self, i: u32, behaviour: Behaviour) {
        let local = self.local_now(i);
        let sn = &mut self.nodes[i as usize];
        if sn.status != Status::Running {
            return;
        }
        sn.node.as_mut().expect("a running node has a process").set_behaviour(local, behaviour);
        self.drain(i, false);
    }

    /// One round of a malformed flood: a frame of random bytes from every flooding node on
    /// every interface, then the next round.
    fn flood(&mut self, instance: u32) {
        let inst = &self.instances[instance as usize];
        let FaultKind::MalformedFlood { rate_per_s, .. } = self.scenario.faults[inst.spec as usize].kind else { return };
        if inst.t_heal.is_some_and(|h| self.now >= h) {
            return;
        }
        let nodes = inst.nodes.clone();
        let mut rng = self.instances[instance as usize].flood_rng.take().expect("a flood has its stream");
        let mut frame = Vec::with_capacity(*FLOOD_FRAME_LEN.end());
        for n in nodes {
            if self.nodes[n.index()].status != Status::Running {
                continue;
            }
            for iface in 0..self.nodes[n.index()].ifaces.len() {
                frame.clear();
                frame.resize(rng.random_range(FLOOD_FRAME_LEN), 0);
                rng.fill_bytes(&mut frame);
                self.stats.frames_flooded += 1;
                self.transmit(n.0, IfIndex(iface as u16), Dest::Multicast, TrafficClass::Data, &frame);
            }
        }
        self.instances[instance as usize].flood_rng = Some(rng);
        self.push(self.now + 1_000_000_000 / u64::from(rate_per_s), Ev::Flood { instance });
    }

    fn apply_degrades(&mut self, e: u32) {
        let link = &mut self.links[e as usize];
        for dir in &mut link.dirs {
            dir.params = link.degrades.iter().fold(dir.base, |p, (_, d)| p.degraded(d));
        }
    }

    /// After a clock change the node's next deadline maps to a different global time.
    fn rearm(&mut self, i: u32) {
        let sn = &mut self.nodes[i as usize];
        if sn.status == Status::Running {
            sn.timer_at = None;
            sn.timer_generation += 1;
            self.drain(i, false);
        }
    }

    // ----- results --------------------------------------------------------------------------

    fn finish(self) -> RunResult {
        let horizon = Instant::from_nanos(self.end);
        let checks = &self.scenario.checks;
        let eval = self.rec.finish(
            &self.scenario.steady_state,
            checks.recovery_window,
            checks.false_positive_grace,
            self.scenario.protocol.probe_timeout,
            horizon,
        );
        let counters = RunCounters {
            nodes: u64::from(self.topo.node_count()),
            loops: self.loops,
            false_positives: eval.false_positives,
            honest_isolated: eval.honest_isolated,
            probes: u64::from(eval.probes_total),
            probes_ok: u64::from(eval.probes_ok),
            control_bytes: self.control_bytes,
            measured_seconds: (self.end - self.warmup) as f64 / 1e9,
            stretch: self.stretch.clone(),
        };
        let (mut route_entries, mut state_bytes, mut live_nodes) = (0, StateBytes::default(), 0);
        for node in self.nodes.iter().filter_map(|n| n.node.as_ref()) {
            route_entries += node.destinations() as u64;
            state_bytes += node.state_bytes();
            live_nodes += 1;
        }
        RunResult {
            seed: self.seed,
            fingerprint: self.fingerprint.digest(),
            trace_records: self.fingerprint.records(),
            nodes: self.topo.node_count(),
            links: self.topo.edge_count(),
            faults: eval.faults,
            counters,
            baseline_success: eval.baseline_success,
            loop_examples: self.loop_examples.clone(),
            engine: self.stats.clone(),
            sim_seconds: self.end as f64 / 1e9,
            route_entries,
            state_bytes,
            live_nodes,
            trace: Trace { events: eval.events, probes: eval.probes, pairs: eval.pairs },
        }
    }
}

/// The probed pairs of a run and the phase (ns into the run) of each pair's first probe,
/// drawn from the seed: the live harness probes exactly the pairs the simulator does.
pub fn probe_workload(scenario: &Scenario, nodes: u32, seed: u64) -> Vec<((NodeId, NodeId), u64)> {
    let w = &scenario.workload;
    let mut rng = seed::stream(seed, "workload", 0, 0);
    let interval = ns(w.probe_interval);
    (0..w.probe_pairs)
        .map(|_| {
            let src = rng.random_range(0..nodes);
            let mut dst = rng.random_range(0..nodes - 1);
            if dst >= src {
                dst += 1;
            }
            ((NodeId(src), NodeId(dst)), rng.random_range(0..interval))
        })
        .collect()
}

/// Explicit link targets must name adjacent nodes; say which do not, and where.
fn check_links(scenario: &Scenario, topo: &Topology) -> Result<(), ScenarioError> {
    let gt_adjacent = |a: u32, b: u32| {
        topo.graph
            .find_edge(petgraph::graph::NodeIndex::new(a as usize), petgraph::graph::NodeIndex::new(b as usize))
            .is_some()
    };
    for (i, f) in scenario.faults.iter().enumerate() {
        let target = match &f.kind {
            FaultKind::LinkDown(t) | FaultKind::LinkFlap { target: t, .. } => t,
            FaultKind::Degrade(d) => &d.target,
            _ => continue,
        };
        if let LinkTarget::Links(pairs) = target {
            for (j, [a, b]) in pairs.iter().enumerate() {
                if !gt_adjacent(a.value, b.value) {
                    return Err(error_at(
                        &scenario.origin,
                        a.referenced,
                        format!(
                            "faults[{i}].{}: links[{j}] is [{}, {}], but nodes {} and {} are not linked in {}",
                            f.kind.label(),
                            a.value,
                            b.value,
                            a.value,
                            b.value,
                            topo.description
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

